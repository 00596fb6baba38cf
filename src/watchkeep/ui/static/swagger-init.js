// Starts Swagger UI on /docs. Lives in a file, not inline, so the page runs under a
// Content-Security-Policy with script-src 'self'. The schema URL comes from the container's
// data-openapi-url attribute (it follows the app's root path).
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const container = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: container.dataset.openapiUrl || "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true, // each operation has a #fragment URL to share
    persistAuthorization: true, // the bearer key entered under Authorize survives a reload
    displayRequestDuration: true,
    tryItOutEnabled: false,
    filter: true, // a search box over operations and tags
    validatorUrl: null, // never call swagger.io's online validator
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
