# Adam with a cosine decay to 1e-6 over 100k iterations, L2 loss, validation every 2000.
optimizer = dict(type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
lr_schedule = dict(type='cosine', min_lr=1e-6, warmup_iters=0)
train_cfg = dict(max_iters=100_000, val_interval=2000, loss='l2')  # grad_clip, ema: off (defaults)
checkpoint = dict(interval=2000, keep=2)
