# The seed step in PyTorch, for the per-core comparison with `ddp bench step` / `ddp train --workers 0`.
# The seed CNN (Conv 32-64-64 3x3 valid + ReLU, 2x maxpool, Dense 576-64-10), summed cross-entropy, Adam 1e-3,
# batch 64, one thread, random inputs preloaded (the data pipeline is not timed); prints samples/s of STEPS
# steps after 10 warm-up steps. Needs Debian's python3-torch (apt-get install python3-torch libopenblas0-pthread):
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 0 /usr/bin/python3 bench/pytorch-seed-step.py [STEPS]
import sys, time, torch, torch.nn as nn
torch.set_num_threads(1); torch.manual_seed(0)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
net = nn.Sequential(nn.Conv2d(1,32,3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32,64,3), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(64,64,3), nn.ReLU(), nn.Flatten(), nn.Linear(576,64), nn.ReLU(), nn.Linear(64,10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.rand(steps, 64, 1, 28, 28); y = torch.randint(0, 10, (steps, 64))
loss = nn.CrossEntropyLoss(reduction='sum')
for i in range(10):
    opt.zero_grad(); loss(net(x[i]), y[i]).backward(); opt.step()
t0 = time.perf_counter()
for i in range(steps):
    opt.zero_grad(); loss(net(x[i]), y[i]).backward(); opt.step()
print(64 * steps / (time.perf_counter() - t0))
