package check

import "strings"

// unreadAttrs are resource attributes and nested blocks no rule reads, of
// any resource type: labels, images, zones, regions, sizes, versions,
// credentials, roles and who holds them, secrets, backups and start-up
// scripts, a key vault's tenant and who holds its access policies, the
// resource group a service manages, a subnet's delegation, a database's
// regions, where a machine sends its boot diagnostics, a search domain's
// nodes, disks and master user, a private link service's frontends and the
// subscriptions that may see or connect to it. Nested arguments are matched by name as
// well (advanced_security_options.master_user_options.master_user_password).
// What cannot be
// evaluated there changes no finding, so it is not noted (the notes that
// can change one would be buried). An image is read only to learn whether
// it requires IMDS tokens; an unknown one is read as not requiring them,
// and the finding says the image is not known to. Names are not among
// them: resources are linked by name (a security group in
// aws_instance.security_groups, a DB subnet group, an Azure network and its
// subnets).
var unreadAttrs = map[string]bool{
	"tags": true, "tags_all": true, "description": true, "timeouts": true,
	"ami": true, "image_id": true, "source_image_id": true, "source_image_reference": true, "storage_image_reference": true,
	"user_data": true, "user_data_base64": true, "user_data_replace_on_change": true, "custom_data": true,
	"availability_zone": true, "availability_zone_id": true, "availability_zones": true, "zone": true, "zones": true,
	"location": true, "outpost_arn": true,
	"instance_type": true, "vm_size": true, "size": true, "os_disk": true, "storage_os_disk": true,
	"engine_version": true, "kubernetes_version": true, "addon_version": true,
	"key_name": true, "public_key": true, "admin_username": true, "admin_password": true, "admin_ssh_key": true,
	"os_profile": true, "password": true, "master_password": true, "auth_token": true, "username": true, "master_username": true,
	"administrator_login": true, "administrator_login_password": true, "administrator_password": true,
	"role_arn": true, "execution_role_arn": true, "task_role_arn": true, "monitoring_role_arn": true, "thumbprint_list": true,
	"parameter_group_name": true, "option_group_name": true, "final_snapshot_identifier": true,
	"skip_final_snapshot": true, "backup_retention_period": true, "deletion_protection": true,
	"principal_id": true, "client_id": true, "secret": true,
	"tenant_id": true, "object_id": true, "access_policy": true, // who holds a key vault's permissions
	"managed_resource_group_name": true, "delegation": true, "geo_location": true, "boot_diagnostics": true,
	"cluster_config": true, "ebs_options": true, "master_user_name": true, "master_user_password": true, "master_user_arn": true,
	"load_balancer_frontend_ip_configuration_ids": true, "visibility_subscription_ids": true, "auto_approval_subscription_ids": true,
	"template": true, // a container app's containers: their images, resources and environment
}

// unread reports whether attribute attr of a resource of type typ is one
// no rule reads (tf.Options.Unread): those above, and the write-only
// arguments (password_wo, value_wo and their _wo_version), secrets
// Terraform passes to the provider and never keeps.
func unread(_, attr string) bool {
	return unreadAttrs[attr] || strings.HasSuffix(attr, "_wo") || strings.HasSuffix(attr, "_wo_version")
}
