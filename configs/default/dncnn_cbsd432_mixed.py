# The shipped default model: a small colour blind DnCNN trained on CBSD432 with mixed noise
# (blind AWGN sigma in [0, 50]/255 or CBDNet-range Poisson-Gaussian, 50/50 per crop) and
# selected on Kodak24 at AWGN sigma = 25/255.
#
# Size: depth 12, width 48 (210,960 parameters, 25x25 receptive field), the smallest of the
# asked range. It was trained on a shared 2-core CPU with a ~35-minute budget: one thread runs
# an iteration of 16 40x40 crops in 0.5-1.2 s depending on the load, so the budget buys about
# 1,500 iterations, and in that few steps a small network gets further than a large one.
# With a GPU, prefer depth 17-20, width 64, batch 128 and 100k+ iterations (configs/dncnn/).
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
    '../_base_/noise/mixed.py',
]
model = dict(type='dncnn', in_channels=3, out_channels=3, depth=12, width=48, batch_norm=True, residual=True)
train_dataloader = dict(batch_size=16, num_workers=0, dataset=dict(patch_size=40))
val_dataset = dict(center_crop=128)   # 24 Kodak crops, fixed-seed AWGN 25: ~5 s per validation
optimizer = dict(type='Adam', lr=2e-3, betas=(0.9, 0.999))
lr_schedule = dict(type='cosine', min_lr=2e-5, warmup_iters=50)
train_cfg = dict(max_iters=1500, val_interval=250, loss='l2', grad_clip=dict(max_norm=1.0), ema=dict(decay=0.995))
checkpoint = dict(interval=100, keep=2)
log_interval = 25
