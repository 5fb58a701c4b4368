"""Analysis of trained runs: loss landscapes around a checkpoint (Li et al. 2018)."""
