// The conformance checker and `Record` live in SluiceConformance, so that `sluice plugins check` can use them without
// linking the test kit; a plugin's tests keep importing SluiceTesting alone and see them through it.
@_exported import SluiceConformance
