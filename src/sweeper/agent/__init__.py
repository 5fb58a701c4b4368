"""The agent: the trial loop, GPU slots, forked trial processes, and launching a sweep."""
