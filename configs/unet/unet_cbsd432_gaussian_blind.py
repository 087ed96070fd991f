# The built-in residual U-Net (width 32, 3 poolings) on blind AWGN; crops are multiples of 8.
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
    '../_base_/noise/gaussian_blind.py',
    '../_base_/schedules/adam_cosine_100k.py',
]
model = dict(type='unet', width=32, depth=3)
optimizer = dict(lr=3e-4)
train_dataloader = dict(batch_size=16, dataset=dict(patch_size=128))
train_cfg = dict(loss='l1', ema=dict(decay=0.999))
