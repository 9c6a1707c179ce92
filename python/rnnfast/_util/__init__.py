"""Internal helpers every other part of rnnfast uses, and that use no other part: argument checks
(checks), the array module of an array (arrays), NumPy's BLAS threads (blas)."""
