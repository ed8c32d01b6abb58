import { templateTests } from "./dev-templates.js";

templateTests(["plugin-c"]);
