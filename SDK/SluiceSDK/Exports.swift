// Plugin authors import only SluiceSDK; the ABI types (sluice_plugin_v1, sluice_batch) come with it.
@_exported import CSluice
