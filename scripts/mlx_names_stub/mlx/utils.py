def tree_map(f,t,*r,**k): return t
def tree_flatten(t,prefix='',is_leaf=None):
    out=[]
    if isinstance(t,dict):
        for k,v in t.items(): out+=tree_flatten(v,prefix+('.' if prefix else '')+str(k))
    elif isinstance(t,list):
        for i,v in enumerate(t): out+=tree_flatten(v,prefix+('.' if prefix else '')+str(i))
    else: out.append((prefix,t))
    return out
def tree_unflatten(x): return x
def tree_reduce(*a,**k): return None
