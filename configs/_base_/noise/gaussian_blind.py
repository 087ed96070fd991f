# Blind AWGN as for DnCNN-B / CDnCNN-B: sigma drawn per crop from [0, 55]/255; validated at 25.
train_noise = dict(type='gaussian', sigma=[0.0, 55 / 255])
val_noise = dict(type='gaussian', sigma=25 / 255)
