# AINDNet (Kim et al., CVPR 2020), synthetic-noise stage, paper network (13,764,014 parameters):
# CBSD432 crops with CBDNet's camera-pipeline noise (the 201 DoRF response curves, sigma_s in
# [0, 0.16], sigma_c in [0, 0.06], random Bayer pattern, Malvar demosaicing), trained with
# L1 + 0.05 * multi-scale asymmetric estimation loss on the true noise map (aindnet_synthetic).
# Paper: Waterloo Exploration images, 256x256 patches, Adam. The paper gives no learning rate,
# batch size or iteration count: lr 2e-4 with a cosine decay, batch 16 and 100k iterations are
# our choices (a GPU run). Validation: Kodak24 with fixed-seed CBDNet noise.
# Transfer stage afterwards (L1 on real pairs, only the 'domain' role; see docs/ain_transfer.md):
#   noiseshift adapt ain_transfer --model work_dirs/aindnet_cbsd432_cbdnet/best.safetensors \
#       --target 'polyu:root=../shared/data/real/PolyU,split=adapt' -o polyu_head.safetensors
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
    '../_base_/schedules/adam_cosine_100k.py',
]
model = dict(type='aindnet', preset='paper', coarse_scale=8)
train_noise = dict(type='cbdnet', crf_dir='../shared/data/crf')
val_noise = dict(type='cbdnet', crf_dir='../shared/data/crf')
train_dataloader = dict(batch_size=16, dataset=dict(patch_size=256))
optimizer = dict(type='Adam', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.0)
lr_schedule = dict(type='cosine', min_lr=1e-6, warmup_iters=0)
train_cfg = dict(loss='aindnet_synthetic')  # defaults: weight 0.05, w1 0.2, w4 0.8, alpha 0.25
