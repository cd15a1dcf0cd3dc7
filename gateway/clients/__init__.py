"""Where OAuth clients come from: YAML, the store (DCR and `clients add`), and Client ID Metadata Documents."""
