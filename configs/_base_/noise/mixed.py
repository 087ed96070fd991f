# Mixed noise: per crop, blind AWGN with sigma in [0, 50]/255 or CBDNet-range Poisson-Gaussian
# (sigma_s in [0, 0.16], sigma_c in [0, 0.06]), with equal probability. Validated on AWGN 25.
train_noise = dict(
    type='mixture',
    components=[
        dict(type='gaussian', sigma=[0.0, 50 / 255]),
        dict(type='poisson_gaussian', sigma_s=[0.0, 0.16], sigma_c=[0.0, 0.06]),
    ],
    weights=[0.5, 0.5],
)
val_noise = dict(type='gaussian', sigma=25 / 255)
