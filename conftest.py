# Marks the repository root for pytest, so that `lib` imports without installing the package.
