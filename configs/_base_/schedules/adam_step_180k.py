# Adam 1e-3, divided by 10 at 100k and 150k iterations (KAIR-style step schedule), L2 loss.
optimizer = dict(type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
lr_schedule = dict(type='step', milestones=[100_000, 150_000], gamma=0.1)
train_cfg = dict(max_iters=180_000, val_interval=5000, loss='l2')  # grad_clip, ema: off (defaults)
checkpoint = dict(interval=5000, keep=2)
