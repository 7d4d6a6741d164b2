"""What a run leaves on disk: the atomic staging of a model's folder, its manifest, golden data sets
and the signatures that let a later reader trust them."""
