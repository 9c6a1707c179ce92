"""A character-level language model trained with DistributedDataParallel over rnnfast.torch.LSTM.

Every process trains on its share of each batch; DDP averages the gradients (gloo on the CPU, NCCL on GPUs),
so N processes train the same model as one process on the whole batch. Without torchrun it runs as a single
process.

    python examples/ddp_char.py --steps 200                                  # one process
    torchrun --standalone --nproc_per_node 2 examples/ddp_char.py            # 2 processes, this machine
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 4 \
             --master_addr 10.0.0.1 --master_port 29500 examples/ddp_char.py # on the first of two machines
    (and --node_rank 1 on the second)

The text: --text FILE, or by default Python sources of the standard library (nothing is downloaded). It
prints the held-out bits per character before and after training and returns non-zero when training did
not lower it.
"""

import argparse
import math
import os
import sys
import time

import torch
import torch.distributed as dist
from torch import nn

import rnnfast.torch as rt


def default_text(limit=400_000):
    """Some of the standard library's Python sources (the same files on every process)."""
    root = os.path.dirname(os.__file__)
    parts, size = [], 0
    for name in sorted(os.listdir(root)):
        if name.endswith(".py"):
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
            size += len(parts[-1])
            if size >= limit:
                break
    return "".join(parts)[:limit]


class CharModel(nn.Module):
    def __init__(self, vocab, hidden, layers, dropout, cell):
        super().__init__()
        self.embed = nn.Embedding(vocab, 64)
        rnn = {"lstm": rt.LSTM, "gru": rt.GRU, "rnn": rt.RNN}[cell]
        self.rnn = rnn(64, hidden, num_layers=layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx):
        y, _ = self.rnn(self.embed(idx))
        return self.head(y)


def bits_per_char(model, data, seq, batch):
    """Mean cross-entropy in bits over held-out windows (in eval mode, no gradient)."""
    model.eval()
    n = (len(data) - 1) // seq
    starts = torch.arange(n) * seq
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch):
            s = starts[i:i + batch]
            x = torch.stack([data[j:j + seq] for j in s])
            t = torch.stack([data[j + 1:j + seq + 1] for j in s])
            out = model(x)
            total += nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), t.reshape(-1),
                                                 reduction="sum").item()
            count += t.numel()
    model.train()
    return total / count / math.log(2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", help="UTF-8 text file (default: Python sources of the standard library)")
    p.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32, help="global batch: split over the processes")
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--compile", action="store_true", help="torch.compile(model, fullgraph=True)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ
    cuda = torch.cuda.is_available() and os.environ.get("RNNFAST_EXAMPLE_DEVICE", "") == "cuda"
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if args.batch % world:
        sys.exit(f"--batch {args.batch} must be a multiple of the number of processes ({world})")

    if args.text:
        with open(args.text, encoding="utf-8") as f:
            text = f.read()
    else:
        text = default_text()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    split = int(0.95 * len(data))
    train, val = data[:split], data[split:]

    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = CharModel(len(chars), args.hidden, args.layers, args.dropout, args.cell).to(device)
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    step_fn = torch.compile(ddp, fullgraph=not distributed) if args.compile else ddp
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    before = bits_per_char(model, val.to(device), args.seq, 64)

    share = args.batch // world
    g = torch.Generator().manual_seed(args.seed + 1)  # the same windows on every process: each takes its rows
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(train) - args.seq - 1, (args.batch,), generator=g)
        starts = starts[rank * share:(rank + 1) * share]
        x = torch.stack([train[j:j + args.seq] for j in starts]).to(device)
        t = torch.stack([train[j + 1:j + args.seq + 1] for j in starts]).to(device)
        opt.zero_grad(set_to_none=True)
        out = step_fn(x)
        loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), t.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if rank == 0 and (step % 50 == 0 or step == args.steps):
            ms = 1e3 * (time.perf_counter() - t0) / step
            print(f"step {step}: loss {loss.item() / math.log(2):.3f} bits/char ({ms:.1f} ms/step, "
                  f"{world} process{'es' if world > 1 else ''})", flush=True)

    after = bits_per_char(model, val.to(device), args.seq, 64)
    if rank == 0:
        print(f"held-out bits/char: {before:.3f} before, {after:.3f} after training")
    if distributed:
        dist.barrier()  # leave together (a rank tearing gloo down first can make its peer's transport abort)
        dist.destroy_process_group()
    return 0 if after < before else 1


if __name__ == "__main__":
    sys.exit(main())
