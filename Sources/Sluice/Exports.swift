// A program that imports Sluice gets the engine's value types (ReduceFunction, BatchInfo, ...) with it.
@_exported import SluiceCore
@_exported import SluiceSDK
