# Train on random crops of CBSD432 (clean colour images; synthetic noise from train_noise),
# validate on Kodak24 with val_noise applied with a fixed seed per image.
# Paths are relative to the working directory: run from the repository root.
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(
        type='synthetic',
        root='../shared/data/clean/CBSD432',
        patch_size=64,
        cache='auto',          # decoded uint8 in memory when it fits (CBSD432: ~200 MB)
    ),
)
val_dataset = dict(
    root='../shared/data/clean/Kodak24',
    seed=0,
    center_crop=256,           # cheaper periodic validation; evaluate full images at the end
)
