"""Benchmark of aufacial.augment: is batched augmentation cheap next to the training step it feeds?

CUDA (when present): global augmentation + local warp on 2 views of a batch (default 512 x 3 x 112 x 112) against a
torchvision ResNet-18 train step on the same batch (bf16 autocast, channels-last, SGD); prints both times and the ratio.
CPU: the batched pipeline against the same ops done per image with torchvision.transforms.v2 inside a torch DataLoader
(2 workers) on the same images; prints images/s for both and the ratio (global only, then global + local warp). The
batched pipeline is timed with 1 and with --threads torch threads: on an oversubscribed machine intra-op threads stall.

Usage: python scripts/bench_augment.py [--device cpu|cuda] [--batch 512] [--size 112] [--n-images 512] [--reps 3]
"""
import argparse, os, platform, time
import torch
from torch.utils.data import DataLoader, Dataset
from aufacial.augment import AugmentConfig, GlobalAugment, local_warp


def timed(fn, reps, sync=lambda: None):
    "Best-of-`reps` wall time of fn() in seconds (after one warm-up call)."
    fn(); sync()
    best = float('inf')
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); sync()
        best = min(best, time.perf_counter() - t0)
    return best


# ---------------------------------------------------------------- CPU: per-image torchvision in a DataLoader
class RandomNoise(torch.nn.Module):
    "Gaussian noise with a random std in [lo, hi], applied with probability p (per image)."
    def __init__(self, p, lo, hi): super().__init__(); self.p, self.lo, self.hi = p, lo, hi
    def forward(self, x):
        if torch.rand(()) >= self.p: return x
        return (x + (self.lo + (self.hi - self.lo) * torch.rand(())) * torch.randn_like(x)).clamp(0, 1)


class LocalWarpOne(torch.nn.Module):
    "aufacial.augment.local_warp on one image (the per-sample way of running it)."
    def __init__(self, cfg): super().__init__(); self.cfg = cfg
    def forward(self, x): return local_warp(x[None], cfg=self.cfg)[0]


def torchvision_pipeline(cfg: AugmentConfig, size: int, warp: bool):
    from torchvision.transforms import v2
    ops = [v2.RandomApply([v2.RandomResizedCrop(size, scale=cfg.crop_scale, ratio=cfg.crop_ratio, antialias=False)], p=cfg.crop_p),
           v2.RandomApply([v2.RandomAffine(cfg.degrees, (cfg.translate, cfg.translate), cfg.scale,
                                           interpolation=v2.InterpolationMode.BILINEAR)], p=cfg.affine_p),
           v2.RandomHorizontalFlip(cfg.flip_p),
           v2.RandomApply([v2.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)], p=cfg.jitter_p),
           v2.RandomGrayscale(cfg.gray_p),
           v2.RandomApply([v2.GaussianBlur(cfg.blur_kernel, cfg.blur_sigma)], p=cfg.blur_p),
           RandomNoise(cfg.noise_p, *cfg.noise_std)]
    if warp: ops.append(LocalWarpOne(cfg))
    return v2.Compose(ops)


class TwoViews(Dataset):
    "Two independently augmented views of each image."
    def __init__(self, images, tfm): self.images, self.tfm = images, tfm
    def __len__(self): return len(self.images)
    def __getitem__(self, i): return self.tfm(self.images[i]), self.tfm(self.images[i])


def bench_cpu(args):
    cfg = AugmentConfig()
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(args.n_images, 3, 14, 14, generator=g), size=(args.size, args.size),
                                             mode='bicubic', align_corners=False).clamp(0, 1)
    aug = GlobalAugment(cfg)
    print(f'CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, load average '
          f'{os.getloadavg()[0]:.1f}; DataLoader workers {args.workers}; {args.n_images} images {args.size}x{args.size}, '
          f'2 views each, best of {args.reps}')
    threads = sorted({1, args.threads})
    print(f'{"pipeline":<22}' + ''.join(f'{f"batched {t} thr img/s":>22}' for t in threads) + f'{"per-image DL img/s":>20}{"ratio":>8}')
    for warp in (False, True):
        def batched():
            for s in range(0, args.n_images, args.batch):
                x = images[s:s + args.batch]
                for v in range(2):
                    y = aug(x, generator=g)
                    if warp: y = local_warp(y, cfg=cfg, generator=g)
        tb = {}
        for t in threads:
            torch.set_num_threads(t)
            tb[t] = timed(batched, args.reps)
        torch.set_num_threads(args.threads)
        dl = DataLoader(TwoViews(images, torchvision_pipeline(cfg, args.size, warp)), batch_size=args.batch,
                        num_workers=args.workers, persistent_workers=True)
        def per_image():
            for _ in dl: pass
        tp = timed(per_image, args.reps)
        n = 2 * args.n_images
        name = 'global + local warp' if warp else 'global'
        print(f'{name:<22}' + ''.join(f'{n / tb[t]:>22.0f}' for t in threads) + f'{n / tp:>20.0f}{tp / min(tb.values()):>7.1f}x')
        del dl
    print('ratio = per-image DataLoader time / best batched time (>1: batched is faster)')


# ---------------------------------------------------------------- CUDA: augmentation vs ResNet-18 train step
def bench_cuda(args):
    import torchvision
    dev = torch.device('cuda')
    torch.backends.cudnn.benchmark = True
    cfg = AugmentConfig()
    aug = GlobalAugment(cfg)
    x = torch.rand(args.batch, 3, args.size, args.size, device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    sync = torch.cuda.synchronize

    def augment():
        for v in range(2):
            y = aug(x, generator=g)
            y = local_warp(y, cfg=cfg, generator=g)

    model = torchvision.models.resnet18(num_classes=128).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xc = x.contiguous(memory_format=torch.channels_last)
    target = torch.randn(args.batch, 128, device=dev)

    def step():
        with torch.autocast('cuda', dtype=torch.bfloat16):
            loss = torch.nn.functional.mse_loss(model(xc).float(), target)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

    for _ in range(3): augment(); step()
    ta = timed(augment, args.reps * 5, sync)
    ts = timed(step, args.reps * 5, sync)
    print(f'CUDA: {torch.cuda.get_device_name(0)}; batch {args.batch} x 3 x {args.size} x {args.size}, best of {args.reps * 5}')
    print(f'augmentation (global + local warp, 2 views): {ta * 1e3:8.2f} ms')
    print(f'ResNet-18 train step (bf16, channels-last):  {ts * 1e3:8.2f} ms')
    print(f'ratio augmentation / train step: {ta / ts:.3f}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', choices=('cpu', 'cuda'), default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--batch', type=int, default=512)
    ap.add_argument('--size', type=int, default=112)
    ap.add_argument('--n-images', type=int, default=512, help='CPU: images per pass')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2, help='CPU: torch threads of the batched pipeline (it is also timed with 1 thread)')
    ap.add_argument('--reps', type=int, default=3)
    args = ap.parse_args()
    print(f'torch {torch.__version__}')
    (bench_cuda if args.device == 'cuda' else bench_cpu)(args)


if __name__ == '__main__':
    main()
