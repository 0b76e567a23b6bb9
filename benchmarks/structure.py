"""The code's shape, for the house issue's before / after record: modules and their lengths, the
longest module and function, import edges (imports inside functions included), cycles, and imports
that break the layers contract in pyproject.toml (`lint-imports` names each).

    python -m benchmarks.structure [--top N]
"""

import argparse
import ast
import pathlib

import grimp

ROOTS = ("pixel_keras", "training", "export", "benchmarks")
HERE = pathlib.Path(__file__).resolve().parent.parent


def functions(tree):
    """(qualified name, lines) of every function and method, nested ones included."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((name, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def cycles(graph, modules):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def strong(module):
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in modules:
                continue
            if other not in index:
                strong(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            strong(module)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=5, help="longest modules and functions to list")
    args = parser.parse_args(argv)
    graph = grimp.build_graph(*ROOTS, cache_dir=None)
    modules = {m for m in graph.modules if m.split(".")[0] in ROOTS}
    edges = sum(len([d for d in graph.find_modules_directly_imported_by(m) if d in modules]) for m in modules)
    lengths, longest_functions = [], []
    for path in sorted(p for root in ROOTS for p in (HERE / root).rglob("*.py")):
        text = path.read_text()
        relative = path.relative_to(HERE)
        lengths.append((len(text.splitlines()), str(relative)))
        longest_functions += [(n, f"{relative}:{name}") for name, n in functions(ast.parse(text))]
    lengths.sort(reverse=True)
    longest_functions.sort(reverse=True)
    found = cycles(graph, modules)
    print(f"modules: {len(modules)} ({sum(1 for m in modules if m.startswith('pixel_keras'))} in the library)")
    print(f"import edges between them: {edges}")
    print(f"modules over 400 lines: {sum(1 for n, _ in lengths if n > 400)}; longest: "
          + ", ".join(f"{name} {n}" for n, name in lengths[:args.top]))
    print(f"functions over 80 lines: {sum(1 for n, _ in longest_functions if n > 80)}; longest: "
          + ", ".join(f"{name} {n}" for n, name in longest_functions[:args.top]))
    print(f"import cycles: {len(found)}")
    for component in found:
        print("  " + " ".join(component))


if __name__ == "__main__":
    main()
