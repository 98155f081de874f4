package check

import "moat/internal/check/tf"

// RuleAzBastionLink is a Bastion host that hands out shareable links.
const RuleAzBastionLink = "AZ-NET-007"

func azureBastionRule() Rule {
	return Rule{RuleAzBastionLink, Medium, "Bastion host hands out shareable links",
		"An Azure Bastion host turns shareable links on (shareable_link_enabled, Standard and Premium SKUs): whoever holds a link opens an RDP or SSH session, from the internet, to the virtual machine it names, without an Azure account or an Entra ID sign-in, so the role assignments that gate Bastion stand aside and only the machine's own credentials stand in the way; a link works until it is deleted, wherever it was forwarded. A value not known statically is read as true. A private-only Bastion (private_only_enabled = true, Premium), which takes no connection from the internet, is not reported.",
		"Set shareable_link_enabled = false and have users connect through the Azure portal or the native client (tunneling_enabled), signed in with Entra ID and granted Reader on the Bastion and the machines; while links must stay, delete each once used."}
}

// bastionLinks reports Bastion hosts that hand out shareable links
// (AZ-NET-007).
func bastionLinks(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["azurerm_bastion_host"] {
		if boolean(r.Values, "private_only_enabled", false) && !unknown(r.Values, "private_only_enabled") {
			continue
		}
		switch {
		case unknown(r.Values, "shareable_link_enabled"):
			fs.add(RuleAzBastionLink, r, nil, "shareable_link_enabled is not known statically: read as true, anyone holding a link reaching the machines it names without signing in to Azure")
		case boolean(r.Values, "shareable_link_enabled", false):
			fs.add(RuleAzBastionLink, r, nil, "shareable_link_enabled = true: anyone holding a link reaches the machines it names without signing in to Azure, behind their own credentials alone")
		}
	}
}
