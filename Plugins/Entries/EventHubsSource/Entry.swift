import EventHubsSource
import SluiceSDK

// The plugin's one exported symbol, in a target of its own so that the plugin's code can also be linked into a test
// binary beside other plugins (SwiftPM links every test target into one binary, where entry symbols would collide).
@c(sluice_plugin_entry_v1)
public func sluicePluginEntry(_ hostABI: UInt32) -> UnsafePointer<sluice_plugin_v1>? {
    PluginExport.descriptor(for: EventHubsSource.self, hostABI: hostABI)
}
