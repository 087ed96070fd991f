# Runtime defaults shared by every training config.
seed = 0                 # model initialisation and every sample's randomness derive from it
device = 'auto'          # 'auto' = CUDA when available, else CPU; or 'cpu', 'cuda', 'cuda:1', 'mps'
deterministic = False    # True: torch.use_deterministic_algorithms (slower on GPU)
work_dir = None          # None: work_dirs/<config name> (or --work-dir)
log_interval = 50        # iterations per JSON-lines record / console line
progress = True          # rich progress bar on rank 0
