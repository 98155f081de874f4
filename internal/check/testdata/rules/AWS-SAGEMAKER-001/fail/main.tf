# A notebook instance that leaves direct internet access at the
# provider's default, Enabled, and names no subnet.
resource "aws_sagemaker_notebook_instance" "research" {
  name          = "research"
  role_arn      = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type = "ml.t3.medium"
}
