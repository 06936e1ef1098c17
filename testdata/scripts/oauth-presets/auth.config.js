import GitHub from "callgate/providers/github";
import Google from "callgate/providers/google";
import AzureAD from "callgate/providers/azure-ad";
import MicrosoftEntraID from "callgate/providers/microsoft-entra-id";
import GitLab from "callgate/providers/gitlab";
import Keycloak from "callgate/providers/keycloak";
import Auth0 from "callgate/providers/auth0";
import OAuth from "callgate/providers/oauth";
import OIDC from "callgate/providers/oidc";

const env = process.env;

export default {
  providers: [
    GitHub({ clientId: env.GITHUB_ID, clientSecret: env.GITHUB_SECRET }),
    Google({ clientId: "google-client", clientSecret: "s", authorization: { params: { prompt: "consent", access_type: "offline" } }, refresh: true }),
    AzureAD({ clientId: "azure-client", clientSecret: "s", tenantId: "11111111-2222-3333-4444-555555555555" }),
    MicrosoftEntraID({ clientId: "entra-client", clientSecret: "s", issuer: "https://login.microsoftonline.com/tenant-x/v2.0" }),
    GitLab({ clientId: "gitlab-client", clientSecret: "s", baseUrl: "https://gitlab.example.com" }),
    Keycloak({ clientId: "kc-client", clientSecret: "s", issuer: "https://kc.example.com/realms/main" }),
    Auth0({ clientId: "a0-client", clientSecret: "s", issuer: "https://tenant.eu.auth0.com/", refresh: { gracePeriod: 60 } }),
    OAuth({
      id: "acme", name: "Acme", clientId: "acme-client", clientSecret: "s",
      authorization: "https://acme.example.com/authorize", token: "https://acme.example.com/token",
      userinfo: "https://acme.example.com/me", client: { token_endpoint_auth_method: "client_secret_post" },
      allowDangerousEmailAccountLinking: true,
    }),
    OIDC({ id: "corp", name: "Corp SSO", issuer: "https://sso.corp.example", clientId: "corp-client", checks: ["state"],
      logout: { backchannel: true, endSession: true } }),
  ],
};
