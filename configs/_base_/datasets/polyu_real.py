# Real noisy/clean pairs (PolyU): train and validate on matched files.
# Layout noiseshift expects: two folders with the same file stems, e.g. made from PolyU's
# CroppedImages by splitting *_real / *_mean into noisy/ and clean/ (see docs/training.md).
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(type='paired_folder', noisy_root='data/polyu/train/noisy',
                 clean_root='data/polyu/train/clean', patch_size=64),
)
val_dataset = dict(root='data/polyu/val/clean', noisy_root='data/polyu/val/noisy', center_crop=256)
