"""`hepbench run --strategy horovod`: this process is one rank of a job started by horovodrun,
mpirun or srun, training with TensorFlow; gradients are averaged over all ranks by Horovod.

`HorovodRank` says how a rank joins the job (hvd.init, then this rank's threads and GPU) and how
the ranks gather Python objects (`allgather_object`); the phases themselves, the watchdog and
rank 0's failure report are ranks.RankJob's, shared with PyTorch DDP ranks (ddp.py).
"""

from __future__ import annotations

import os

from hepbench.core.errors import UsageError
from hepbench.mlpf.run.plan import RunOptions, launcher_size
from hepbench.mlpf.run.ranks import RankJob


def _configure_tensorflow(options: RunOptions, local_rank: int) -> list:
    """Threads and this rank's GPU, before any TensorFlow op runs (Horovod's first collective
    initialises TensorFlow, after which neither can change). Returns the GPUs TensorFlow sees."""
    # Imports TensorFlow: only a rank (never the coordinator) gets here.
    from hepbench.mlpf.engines.tensorflow import configure_horovod_rank

    return configure_horovod_rank(options.threads or len(os.sched_getaffinity(0)), options.device, local_rank)


class HorovodRank(RankJob):
    """One rank of a Horovod job (TensorFlow)."""

    strategy = "horovod"

    def join(self, options: RunOptions) -> list[str]:
        import horovod.tensorflow as hvd  # imports TensorFlow: only a rank (never the coordinator) needs it

        hvd.init()
        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        self.controller = "mpi" if hvd.mpi_enabled() else "gloo"  # mpirun/srun: MPI; horovodrun --gloo: Gloo
        if self.size == 1 and launcher_size() > 1:  # n lone 1-rank jobs would each write a report as rank 0
            raise UsageError(
                f"the launcher started {launcher_size()} processes, but Horovod sees only this one: "
                f"Horovod was built without MPI (mpi built: {hvd.mpi_built()}) or its MPI does not "
                "understand this launcher (srun: try another --mpi plugin, or mpirun)"
            )
        return [str(i) for i in range(len(_configure_tensorflow(options, self.local_rank)))]

    def gather(self, obj) -> list:
        return self.hvd.allgather_object(obj)

    def benchmark(self) -> dict:
        return {"controller": self.controller}
