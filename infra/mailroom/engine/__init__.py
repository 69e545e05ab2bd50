"""The Pulumi adapter: the inline program, the provider, the plan, stacks, the engine process."""
