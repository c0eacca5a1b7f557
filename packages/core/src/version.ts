/** ddp's version (`ddp --version`, the ddp_build_info metric). */
export const DDP_VERSION = '0.1.0';
