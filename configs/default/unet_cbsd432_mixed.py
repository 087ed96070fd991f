# Candidate shipped default model: a small residual U-Net (width 16, 3 levels) trained on CBSD432
# with mixed noise (blind AWGN sigma in [0, 50]/255 or CBDNet-range Poisson-Gaussian, 50/50 per
# crop) and selected on Kodak24 centre crops at AWGN sigma = 25/255.
#
# Sized for a shared 2-core CPU: one thread, batch 8 of 64x64 crops. A U-Net reaches further than
# a plain DnCNN in the same few thousand iterations because its downsampled levels see a large
# context cheaply. With a GPU, use configs/unet/unet_cbsd432_mixed.py (width 32, 100k iterations).
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
    '../_base_/noise/mixed.py',
]
model = dict(type='unet', width=16, depth=3)
train_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(patch_size=64))
val_dataset = dict(center_crop=128)
optimizer = dict(type='Adam', lr=1e-3, betas=(0.9, 0.999))
lr_schedule = dict(type='cosine', min_lr=1e-5, warmup_iters=100)
train_cfg = dict(max_iters=6000, val_interval=500, loss='l1', grad_clip=dict(max_norm=1.0), ema=dict(decay=0.999))
checkpoint = dict(interval=250, keep=2)
log_interval = 50
