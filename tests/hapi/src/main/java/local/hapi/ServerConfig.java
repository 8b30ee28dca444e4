package local.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.interceptor.CascadingDeleteInterceptor;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.CorsInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;
import org.springframework.web.cors.CorsConfiguration;

import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import javax.sql.DataSource;

/**
 * Spring wiring for an R4 JPA server on in-memory H2.
 *
 * <p>Follows hapi-fhir-jpaserver-starter (FhirServerConfigR4 + StarterJpaConfig +
 * FhirServerConfigCommon) for HAPI 8.8.0, minus everything the tests do not need
 * (subscriptions, validation, narratives, CR/IPS/MDM, Lucene/Elasticsearch). CORS is on, as in the
 * starter, because the CDS Hooks sandbox runs in a browser and reads this server directly.
 * {@link HapiJpaConfig} supplies the paging provider, fulltext/stale-search services
 * and resource count cache that the starter declares by hand.
 */
@Configuration
@EnableTransactionManagement
@Import({JpaR4Config.class, HapiJpaConfig.class, JpaBatch2Config.class, Batch2JobsConfig.class,
		SubscriptionChannelConfig.class, ThreadPoolFactoryConfig.class})
public class ServerConfig {

	@Bean
	public JpaStorageSettings jpaStorageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();
		// Client-assigned ids may be any legal FHIR id (e.g. "pf-test-1", or purely numeric);
		// server-assigned ids (POST) are UUIDs, as the starter does for ANY.
		s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		// Tests write then search immediately: never serve a cached result of an earlier identical search.
		s.setReuseCachedSearchResultsForMillis(null);
		// Allow conditional deletes matching many resources, e.g. DELETE /Observation?_tag=sys|code
		s.setAllowMultipleDelete(true);
		s.setAllowExternalReferences(true);
		s.setAutoCreatePlaceholderReferenceTargets(false);
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);
		s.setFetchSizeDefaultMaximum(10000);
		s.setHibernateSearchIndexSearchParams(false);
		s.setIndexMissingFields(JpaStorageSettings.IndexEnabledEnum.DISABLED);
		// HAPI default (true): a reference to a type the R4 element does not allow is rejected with 422
		// (HAPI-0931). -Dhapi.enforce_reference_target_types=false accepts such data instead.
		s.setEnforceReferenceTargetTypes(
				Boolean.parseBoolean(System.getProperty("hapi.enforce_reference_target_types", "true")));
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings(); // partitioning off
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings(); // no channel types enabled: subscriptions off
	}

	@Bean(destroyMethod = "close")
	public DataSource dataSource() {
		BasicDataSource ds = new BasicDataSource();
		ds.setDriverClassName("org.h2.Driver");
		ds.setUrl("jdbc:h2:mem:hapi;DB_CLOSE_DELAY=-1");
		ds.setUsername("sa");
		ds.setPassword("");
		ds.setMaxTotal(20);
		return ds;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(dataSource);
		Properties p = new Properties();
		p.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		p.put("hibernate.hbm2ddl.auto", "update");
		p.put("hibernate.format_sql", "false");
		p.put("hibernate.show_sql", "false");
		p.put("hibernate.jdbc.batch_size", "20");
		p.put("hibernate.cache.use_query_cache", "false");
		p.put("hibernate.cache.use_second_level_cache", "false");
		p.put("hibernate.cache.use_structured_entries", "false");
		p.put("hibernate.cache.use_minimal_puts", "false");
		p.put("hibernate.search.enabled", "false");
		emf.setJpaProperties(p);
		return emf;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory emf) {
		JpaTransactionManager tm = new JpaTransactionManager();
		tm.setEntityManagerFactory(emf);
		return tm;
	}

	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviderFactory,
			IJpaSystemProvider systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			CascadingDeleteInterceptor cascadingDeleteInterceptor,
			ValueSetOperationProvider valueSetOperationProvider) {
		FhirContext ctx = systemDao.getContext();
		ctx.setNarrativeGenerator(new NullNarrativeGenerator());

		RestfulServer server = new RestfulServer(ctx);
		server.registerProviders(resourceProviderFactory.createProviders());
		server.registerProvider(systemProvider); // transaction/batch Bundles, $meta, history, ...
		server.registerProvider(valueSetOperationProvider); // ValueSet $expand and $validate-code

		JpaCapabilityStatementProvider cs = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		cs.setImplementationDescription("HAPI FHIR R4 test server (in-memory H2)");
		server.setServerConformanceProvider(cs);

		pagingProvider.setDefaultPageSize(20);
		pagingProvider.setMaximumPageSize(200);
		server.setPagingProvider(pagingProvider);

		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setDefaultPrettyPrint(false);
		// next/self links use the scheme://host:port the client called (e.g. http://127.0.0.1:PORT/fhir)
		server.setServerAddressStrategy(new IncomingRequestAddressStrategy());
		// Only acts when a request carries _cascade=delete
		server.registerInterceptor(cascadingDeleteInterceptor);
		server.registerInterceptor(new CorsInterceptor(corsConfiguration()));
		// -Dhapi.smart-configuration=<file> (scripts/hapi.sh sets it): act as a SMART launch's FHIR server
		String smartConfiguration = System.getProperty("hapi.smart-configuration");
		if (smartConfiguration != null && !smartConfiguration.isBlank()) {
			server.registerInterceptor(new SmartGuard(Path.of(smartConfiguration), corsConfiguration(), ctx));
		}
		return server;
	}

	/**
	 * Any origin may read and write (a local test server, no cookies: {@code *} without credentials), with
	 * the headers a FHIR client sends and the ones it reads back after a create.
	 */
	static CorsConfiguration corsConfiguration() {
		CorsConfiguration cors = new CorsConfiguration();
		cors.addAllowedOrigin("*");
		cors.setAllowedHeaders(List.of(
				"Authorization", "Content-Type", "Accept", "Prefer", "Origin", "X-Requested-With",
				"If-Match", "If-None-Match", "If-None-Exist", "If-Modified-Since", "X-Request-ID"));
		cors.setAllowedMethods(List.of("GET", "POST", "PUT", "DELETE", "OPTIONS"));
		cors.setExposedHeaders(List.of("Location", "Content-Location", "ETag", "Last-Modified"));
		cors.setMaxAge(3600L);
		return cors;
	}
}
