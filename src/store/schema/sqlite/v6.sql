-- Version 6 (issue 13): a team owns one or more Kubernetes namespaces (its
-- pods may use its allocations there and only there).  teams.namespaces is
-- the comma-joined sorted list the API shows; team_namespaces makes each
-- namespace belong to at most one team (its primary key), whatever races.
ALTER TABLE teams ADD COLUMN namespaces TEXT NOT NULL DEFAULT '';
UPDATE teams SET namespaces = id;
CREATE TABLE team_namespaces(
namespace TEXT PRIMARY KEY, team_id TEXT NOT NULL REFERENCES teams(id));
CREATE INDEX team_namespaces_team ON team_namespaces(team_id);
INSERT INTO team_namespaces(namespace, team_id) SELECT id, id FROM teams;
