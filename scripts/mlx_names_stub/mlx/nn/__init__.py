# shape-only stand-in for mlx.nn: a Module is a dict of its parameters and children
import mlx.core as mx
class Module(dict):
    def __init__(s): super().__init__(); object.__setattr__(s,'training',False)
    def __setattr__(s,k,v):
        if isinstance(v,(mx.array,Module,list,dict)) and not k.startswith('_'): s[k]=v
        else: object.__setattr__(s,k,v)
    def __getattr__(s,k):
        if k in s: return s[k]
        raise AttributeError(k)
    def freeze(s,*a,**k): return s
    def parameters(s): return s
class Linear(Module):
    def __init__(s,i,o,bias=True):
        super().__init__(); s.weight=mx.zeros((o,i))
        if bias: s.bias=mx.zeros((o,))
class Embedding(Module):
    def __init__(s,n,d): super().__init__(); s.weight=mx.zeros((n,d))
class RMSNorm(Module):
    def __init__(s,d,eps=1e-5): super().__init__(); s.weight=mx.ones((d,))
class LayerNorm(Module):
    def __init__(s,d,eps=1e-5,affine=True,bias=True):
        super().__init__()
        if affine:
            s.weight=mx.ones((d,))
            if bias: s.bias=mx.zeros((d,))
class Conv1d(Module):
    def __init__(s,in_channels,out_channels,kernel_size,stride=1,padding=0,dilation=1,groups=1,bias=True):
        super().__init__(); s.weight=mx.zeros((out_channels,kernel_size,in_channels//groups))
        if bias: s.bias=mx.zeros((out_channels,))
class RoPE(Module):
    def __init__(s,*a,**k): super().__init__()
def __getattr__(n): return mx._Any()
