"""Op time from a TensorFlow profiler trace (an `.xplane.pb` as `tf.profiler.experimental` writes it):
the executor records each op it runs as an event named "scope/op_name:OpType" on its threads."""

import re

_OP_EVENT = re.compile(r"^[^\s:]+:([A-Za-z0-9_]+)$")  # "model/conv/Conv2D:Conv2D", not "Executor::Run"


def op_times(xplane_bytes, steps, wall_seconds):
    """{op_ms_per_step: {op type: ms}, busiest_thread_ms_per_step, idle_ms_per_step, op_events}.

    Per step: each op type's time summed over threads; the largest per-thread op total; and the
    wall clock during which no op ran on any thread (Python, dispatch, executor overhead)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xplane_bytes)
    per_type, per_thread, intervals, events = {}, [], [], 0
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        kinds = {key: _OP_EVENT.match(meta.name) for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            thread = 0
            for event in line.events:
                kind = kinds.get(event.metadata_id)
                if kind is None:
                    continue
                ms = event.duration_ps / 1e9
                per_type[kind.group(1)] = per_type.get(kind.group(1), 0.0) + ms
                thread += ms
                begin = line.timestamp_ns * 1e-6 + event.offset_ps / 1e9
                intervals.append((begin, begin + ms))
                events += 1
            per_thread.append(thread)
    covered, end = 0.0, float("-inf")
    for begin, finish in sorted(intervals):  # the union of all op intervals
        if finish > end:
            covered += finish - max(begin, end)
            end = finish
    return {"op_ms_per_step": {name: ms / steps for name, ms in per_type.items()},
            "busiest_thread_ms_per_step": max(per_thread, default=0.0) / steps,
            "idle_ms_per_step": max(0.0, wall_seconds * 1000 - covered) / steps, "op_events": events}
