import torch

# Small tensors: one thread is far faster than two contending ones on a shared CPU.
torch.set_num_threads(1)
