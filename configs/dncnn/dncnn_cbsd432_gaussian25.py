# Colour DnCNN-S-style: non-blind sigma = 25/255, 17 layers x 64 channels, 40x40 crops.
_base_ = [
    '../_base_/runtime.py',
    '../_base_/datasets/cbsd432_kodak24.py',
    '../_base_/noise/gaussian25.py',
    '../_base_/schedules/adam_cosine_100k.py',
]
model = dict(type='dncnn', depth=17, width=64)
train_dataloader = dict(batch_size=128, dataset=dict(patch_size=40))
