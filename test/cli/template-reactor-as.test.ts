import { templateTests } from "./dev-templates.js";

templateTests(["reactor-as"]);
