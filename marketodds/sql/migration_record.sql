INSERT INTO /* TEMPLATE: schema */oddsledger_migrations (version, name) VALUES (@version, @name)
