# Workloads a cluster runs: a service of type LoadBalancer or NodePort, an
# ingress, a raw manifest of either, and a Helm chart may each put them on
# the internet; a ClusterIP service does not.

resource "kubernetes_service_v1" "shop" {
  metadata {
    name = "shop"
  }
  spec {
    type     = "LoadBalancer"
    selector = { app = "shop" }
    port {
      port        = 80
      target_port = 8080
    }
  }
}

resource "kubernetes_service" "metrics" {
  metadata {
    name = "metrics"
  }
  spec {
    selector = { app = "metrics" }
    port {
      port = 9090
    }
  }
}

resource "kubernetes_ingress_v1" "web" {
  metadata {
    name = "web"
  }
  spec {
    rule {
      http {
        path {
          path = "/"
          backend {
            service {
              name = "shop"
              port {
                number = 80
              }
            }
          }
        }
      }
    }
  }
}

resource "kubernetes_manifest" "admin" {
  manifest = {
    apiVersion = "v1"
    kind       = "Service"
    metadata   = { name = "admin", namespace = "default" }
    spec = {
      type     = "NodePort"
      selector = { app = "admin" }
      ports    = [{ port = 8443 }]
    }
  }
}

resource "helm_release" "ingress" {
  name       = "ingress-nginx"
  repository = "https://kubernetes.github.io/ingress-nginx"
  chart      = "ingress-nginx"
}
