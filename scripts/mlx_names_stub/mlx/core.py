# shape-only stand-in for mlx.core: arrays carry a shape and a dtype, nothing else
import functools
class Dtype:
    def __init__(s,n): s.n=n
    def __repr__(s): return s.n
float32=Dtype('float32'); bfloat16=Dtype('bfloat16'); float16=Dtype('float16'); uint32=Dtype('uint32'); int32=Dtype('int32'); bool_=Dtype('bool')
class array:
    def __init__(s,shape,dtype=float32): s.shape=tuple(int(x) for x in shape); s.dtype=dtype
    @property
    def ndim(s): return len(s.shape)
    def astype(s,d): return array(s.shape,d)
    def __getattr__(s,n): return _Any()
    def __neg__(s): return s
    def __add__(s,o): return s
    __radd__=__mul__=__rmul__=__sub__=__rsub__=__truediv__=__pow__=__add__
class _Any:
    def __call__(s,*a,**k):
        if len(a)==1 and callable(a[0]) and not k and not isinstance(a[0],(array,_Any)): return a[0]
        return _Any()
    def __getattr__(s,n): return _Any()
    def __bool__(s): return False
    def _self(s, *a): return s
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _self
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __neg__ = __getitem__ = _self
def _shape(x): return (x,) if isinstance(x,int) else tuple(x)
def zeros(shape,dtype=float32): return array(_shape(shape),dtype)
def ones(shape,dtype=float32): return array(_shape(shape),dtype)
def log(x): return array(x.shape,x.dtype)
exp=log
def compile(f=None,**k):
    if f is None: return lambda g: g
    return f
class _Random:
    def uniform(s,low=0,high=1,shape=(),dtype=float32,**k): return array(_shape(shape),dtype)
    def normal(s,shape=(),dtype=float32,**k): return array(_shape(shape),dtype)
    def __getattr__(s,n): return _Any()
random=_Random()
def __getattr__(n): return _Any()
def arange(*a, dtype=float32, **k):
    a = [int(x) for x in a]
    lo, hi, st = (0, a[0], 1) if len(a) == 1 else (a[0], a[1], a[2] if len(a) > 2 else 1)
    return array((max(0, (hi - lo + st - 1) // st),), dtype)
