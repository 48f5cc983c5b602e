"""`hepbench run --backend torch --strategy ddp`: this process is one rank of a PyTorch
DistributedDataParallel job started by torchrun or srun; gradients are averaged over all ranks.

`DdpRank` says how a rank joins the job and how the ranks gather Python objects; the phases, the
watchdog and rank 0's failure report are ranks.RankJob's, shared with Horovod ranks (horovod.py).

Joining: rank, world size and local rank come from torchrun's variables (RANK, WORLD_SIZE,
LOCAL_RANK, and MASTER_ADDR/MASTER_PORT of its rendezvous) or, without them, from srun's
(SLURM_PROCID, the step's task count, SLURM_LOCALID), where MASTER_ADDR and MASTER_PORT must come
from the job script (the first node and a free port); a process that no launcher started is a
1-rank job. The process group (init_method env://) uses Gloo on a CPU; on a GPU, NCCL for CUDA
tensors (RCCL on a ROCm build; XCCL for Intel's xpu tensors: DDP's gradient buckets) and Gloo for
host objects (the ranks' entries), so gathering a report never touches a GPU. Its timeout is
--rank-timeout: a collective waiting for a rank that is gone fails after that long at the latest
(Gloo notices a closed connection at once).
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Mapping

from hepbench.core.errors import UsageError
from hepbench.mlpf.run.plan import RunOptions, resolve_device
from hepbench.mlpf.run.ranks import RankJob

_TORCHRUN = ("RANK", "WORLD_SIZE")  # also torch.distributed.launch and other torchelastic agents
_SRUN = ("SLURM_PROCID", "SLURM_LOCALID")
# The collectives library of each GPU API: NCCL for CUDA (RCCL under that name on ROCm), XCCL for Intel's xpu.
_GPU_GROUPS = {"cuda": "nccl", "xpu": "xccl"}


def _integer(env: Mapping[str, str], name: str) -> int:
    value = env.get(name, "")
    if not value.isdigit():
        raise UsageError(f"--strategy ddp: ${name} must be a non-negative integer, not {value!r}")
    return int(value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_environment(env: Mapping[str, str] = os.environ) -> dict:
    """{"rank", "size", "local_rank", "master_addr", "master_port"} of this process: from
    torchrun's variables, else srun's, else those of a 1-rank job on this host."""
    if all(name in env for name in _TORCHRUN):
        launcher, rank, size = "torchrun", _integer(env, "RANK"), _integer(env, "WORLD_SIZE")
        local_rank = _integer(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
    elif all(name in env for name in _SRUN):
        # The step's task count: the batch script's own step (1 task) must not count the job's tasks.
        launcher, rank, local_rank = "srun", _integer(env, "SLURM_PROCID"), _integer(env, "SLURM_LOCALID")
        size = _integer(env, "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in env else "SLURM_NTASKS")
    else:
        launcher, rank, size, local_rank = "no launcher", 0, 1, 0
    if not 0 <= rank < size:
        raise UsageError(f"--strategy ddp: rank {rank} is not below the world size {size} ({launcher})")
    master = {"master_addr": env.get("MASTER_ADDR"), "master_port": env.get("MASTER_PORT")}
    if size == 1:  # nothing to meet: a port of this host will do where the launcher named none
        master = {
            "master_addr": master["master_addr"] or "127.0.0.1",
            "master_port": master["master_port"] or str(_free_port()),
        }
    missing = [f"${k.upper()}" for k, v in master.items() if not v]
    if missing:
        raise UsageError(
            f"--strategy ddp under {launcher}: {' and '.join(missing)} not set; the job script must "
            "export MASTER_ADDR (the first node's address) and MASTER_PORT (a free port on it), as "
            "examples/slurm/mlpf-ddp.sbatch does"
        )
    if not master["master_port"].isdigit():
        raise UsageError(f"--strategy ddp: $MASTER_PORT must be a port number, not {master['master_port']!r}")
    return {"rank": rank, "size": size, "local_rank": local_rank, **master}


class DdpRank(RankJob):
    """One rank of a PyTorch DDP job (Keras on the torch backend; hepbench.mlpf.engines.torch, kind "ddp")."""

    strategy = "ddp"

    def join(self, options: RunOptions) -> list[str]:
        found = rank_environment()
        self.rank, self.size, self.local_rank = found["rank"], found["size"], found["local_rank"]
        # Imports torch (not keras): only a rank (never the coordinator) gets here.
        import torch
        import torch.distributed as dist

        from hepbench.mlpf.engines.torch_devices import accelerator

        kind = accelerator() if options.device != "cpu" else None  # cuda (NVIDIA, AMD) or xpu (Intel)
        gpus = [str(i) for i in range(torch.get_device_module(kind).device_count())] if kind else []
        try:
            device = resolve_device(options.device, gpus, options.backend)
        except UsageError:  # validate reports it after the join, so that all ranks stop together
            device = "cpu"
        if device == "gpu":
            # NCCL and the engine use the current device: the one of this rank's local rank (or the
            # only one, where the launcher gives each task its own GPU).
            torch.get_device_module(kind).set_device(self.local_rank % len(gpus))
        self.process_group = _GPU_GROUPS[kind] if device == "gpu" else "gloo"
        os.environ.update(MASTER_ADDR=found["master_addr"], MASTER_PORT=found["master_port"])
        groups = f"cpu:gloo,{kind}:{self.process_group}" if device == "gpu" else "gloo"
        dist.init_process_group(
            backend=groups,
            init_method="env://",
            rank=self.rank,
            world_size=self.size,
            timeout=datetime.timedelta(seconds=options.rank_timeout),
        )
        self.dist = dist
        return gpus

    def gather(self, obj) -> list:
        gathered: list = [None] * self.size
        self.dist.all_gather_object(gathered, obj)  # over Gloo (host memory) on a GPU run too
        return gathered

    def benchmark(self) -> dict:
        return {"process_group": self.process_group}

    def leave(self) -> None:
        self.dist.destroy_process_group()
