# CDnCNN-B (Zhang et al., TIP 2017): colour blind DnCNN, 20 layers x 64 channels with batch
# norm, residual learning, sigma in [0, 55]/255, 50x50 crops, batch 128, L2 loss.
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
    '../_base_/noise/gaussian_blind.py',
    '../_base_/schedules/adam_step_180k.py',
]
model = dict(type='dncnn', in_channels=3, out_channels=3, depth=20, width=64, batch_norm=True)
train_dataloader = dict(batch_size=128, dataset=dict(patch_size=50))
