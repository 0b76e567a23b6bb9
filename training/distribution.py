"""The tf.distribute strategy a run trains under."""

import json
import os


def cluster_workers():
    """Number of workers TF_CONFIG names (0 when it is unset)."""
    return len(json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", []))


def make_strategy(devices=None):
    """MultiWorkerMirroredStrategy when TF_CONFIG names several workers, MirroredStrategy over
    several local devices, else TensorFlow's default (no-op) strategy.

    One device gets no MirroredStrategy: its one replica still pays for the cross-replica machinery
    (a step running through per-replica functions and thread hand-offs), which on a 2-core CPU
    halved the app's training rate and spent 40 % of its time in the kernel (issue 30,
    BUILD_NOTES.md). The default strategy has the same interface (`scope`, `num_replicas_in_sync`).

    Must run before TensorFlow creates its devices: with no GPU and `devices` > 1, the CPU is split
    into that many logical devices so that data parallelism can be run (and tested) on a CPU.

    Args:
        devices: local replicas; default all GPUs, or one CPU where there is none.
    """
    import tensorflow as tf  # imported where used: the module also serves runs without TensorFlow

    if cluster_workers() > 1:
        return _reducing_nests(tf.distribute.MultiWorkerMirroredStrategy())
    gpus = tf.config.list_physical_devices("GPU")
    if devices is not None and devices < 1:
        raise ValueError(f"Expected --devices >= 1. Received {devices}.")
    if gpus:
        if devices is not None and devices > len(gpus):
            raise ValueError(f"--devices {devices} asked for, but only {len(gpus)} GPU(s) found.")
        names = [f"/gpu:{index}" for index in range(devices or len(gpus))]
    else:
        devices = devices or 1
        if devices > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
        names = [f"/cpu:{index}" for index in range(devices)]
    if len(names) == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(names)


def is_chief(strategy):
    """Whether this process writes the run directory (always, except for non-chief workers)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def _reducing_nests(strategy):
    """Work around two Keras 3.15 `fit` calls that MultiWorkerMirroredStrategy's `reduce` rejects:
    the first (images, images) batch reduced as one nest, and scalar logs reduced along axis 0.
    Each value of a nest is reduced on its own, and scalars across workers only.
    """
    import tensorflow as tf

    reduce_one = strategy.reduce

    def reduce_item(reduce_op, item, axis):
        if axis is not None and strategy.experimental_local_results(item)[0].shape.rank == 0:
            axis = None
        return reduce_one(reduce_op, item, axis)

    def reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda item: reduce_item(reduce_op, item, axis), value)

    strategy.reduce = reduce
    return strategy
