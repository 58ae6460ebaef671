// Every user of the store sees the values it stores.
@_exported import RegistryModel
