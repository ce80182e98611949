def shard_inplace(*a,**k): pass
def shard_linear(*a,**k): pass
def sum_gradients(*a,**k): return lambda x: x
