# Non-blind AWGN at sigma = 25/255 (DnCNN-S style).
train_noise = dict(type='gaussian', sigma=25 / 255)
val_noise = dict(type='gaussian', sigma=25 / 255)
