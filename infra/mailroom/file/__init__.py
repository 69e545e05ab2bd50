"""mailboxes.yaml -> Desired: YAML with positions, the schema, the rules, every finding located."""
