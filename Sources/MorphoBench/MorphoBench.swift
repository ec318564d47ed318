// MorphoBench module.
