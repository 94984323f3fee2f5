"""Planning: which notifications a window holds (the hourly plan) and the late window the sweep re-plans and expires."""
