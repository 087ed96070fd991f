# AINDNet 'small' preset (width 16, 1/1/2/1/1 AIN-ResBlocks, 403,518 parameters) on the synthetic
# stage of aindnet_cbsd432_cbdnet.py, sized for a CPU: 64x64 crops, batch 8, 1,000 iterations
# (about 5 minutes on one CPU thread). tools/studies/ain_transfer.py trains from this file.
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
]
model = dict(type='aindnet', preset='small', coarse_scale=8)
train_noise = dict(type='cbdnet', crf_dir='../shared/data/crf')
val_noise = dict(type='cbdnet', crf_dir='../shared/data/crf')
train_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(patch_size=64))
val_dataset = dict(center_crop=128, max_images=8)
optimizer = dict(type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
lr_schedule = dict(type='cosine', min_lr=1e-5, warmup_iters=20)
train_cfg = dict(max_iters=1000, val_interval=0, loss='aindnet_synthetic', grad_clip=dict(max_norm=1.0))
checkpoint = dict(interval=250, keep=1)
log_interval = 50
