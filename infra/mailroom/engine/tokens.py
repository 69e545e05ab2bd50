"""The names the Pulumi engine knows mailroom's resource by, in one place.

``provider.py`` declares the resource with them, ``plugin.py`` serves them, ``plan.py`` picks the
mailbox steps out of the engine's events with them, and ``workspace.py`` puts the plugin where the
engine looks. Standard library only and no mailroom import, so any layer may import it.

(Named ``tokens`` rather than ``token``: a module called ``token`` would shadow the standard
library's wherever ``engine/`` itself ended up on ``sys.path``.)
"""

from __future__ import annotations

PACKAGE = "mailroom"  # the provider package: default provider URN `pulumi:providers:mailroom::default`
RESOURCE_TYPE = f"{PACKAGE}:index:SharedMailbox"  # served by the `pulumi-resource-mailroom` plugin
PLUGIN = f"pulumi-resource-{PACKAGE}"  # the executable the engine starts (found on PATH: an ambient plugin)

# The type the Python dynamic provider gave the resource before mailroom had a plugin of its own
# (`class SharedMailbox(pulumi.dynamic.Resource, module="mailroom", name="SharedMailbox")`). Stacks applied
# then hold it in every URN; the resource declares it as an alias, so those stacks move over in place.
DYNAMIC_RESOURCE_TYPE = "pulumi-python:dynamic/mailroom:SharedMailbox"
DYNAMIC_PROVIDER_KEY = "__provider"  # the pickled provider the dynamic provider keeps in inputs and outputs
