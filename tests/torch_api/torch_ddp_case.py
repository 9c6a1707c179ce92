"""The DDP case of tests/torch_api/test_torch_ddp.py: a small model with rnnfast.torch.LSTM trained a few steps.

Run as a script, it is one DDP rank (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment, gloo):
it trains on its share of every batch and writes the final parameters to the file named by argv[1].
"""

import sys

import torch
from torch import nn

import rnnfast.torch as rt

STEPS, BATCH, T, C, H = 3, 8, 6, 4, 8


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = rt.LSTM(C, H, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * H, 1)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y.mean(1)).squeeze(-1)  # every step: every weight gets a gradient


def build():
    torch.manual_seed(0)
    return Net().double()


def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, T, C, generator=g, dtype=torch.float64),
             torch.randn(BATCH, generator=g, dtype=torch.float64)) for _ in range(STEPS)]


def train(model, rank=0, world=1):
    """Adam on the mean squared error of this rank's rows of each batch (DDP averages the gradients over the
    ranks: with equal shares that is the gradient of the whole batch's mean)."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    share = BATCH // world
    for x, t in batches():
        x, t = x[rank * share:(rank + 1) * share], t[rank * share:(rank + 1) * share]
        opt.zero_grad()
        nn.functional.mse_loss(model(x), t).backward()
        opt.step()
    return model


def main(out):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        model = DistributedDataParallel(build())
        train(model, rank, world)
        if rank == 0:
            torch.save(model.module.state_dict(), out)
        # both ranks leave together: a rank that tears its gloo pair down while the other is still connected
        # can make the other's transport thread call std::terminate ("terminate called without an active
        # exception": seen once in about ten runs of this test, 2026-12-05)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
